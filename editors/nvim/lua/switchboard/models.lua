-- The model picker (`:Switchboard model`, `gm` in the chat): vim.ui.select over switchboard/models.
-- The choice applies to the workspace's next messages; the conversation is kept.
local errors = require('switchboard.errors')
local server = require('switchboard.server')
local status = require('switchboard.status')

local M = {}

function M.format_item(model, selected)
  local mark = model.id == selected and '● ' or '  '
  local detail = model.available and model.description or ('locked: ' .. tostring(model.unavailableReason))
  if type(model.retiresOn) == 'string' then
    local retired = model.retiresOn <= os.date('!%Y-%m-%d')
    detail = ('%s (Anthropic %s it on %s)'):format(detail, retired and 'retired' or 'retires', model.retiresOn)
  end
  return ('%s%s  %s×  %s'):format(mark, model.name, status.format_credits(model.creditMultiplier), detail)
end

-- Selects `model_id` for the root's workspace; on_done() after the server accepted it.
function M.select(root, model_id, on_done)
  server.request(root, 'switchboard/selectModel', {
    workspaceUri = server.workspace_uri(root),
    modelId = model_id,
  }, function(err, result)
    if err then
      errors.show(err, {
        use_model = function(id)
          M.select(root, id, on_done)
        end,
      })
      return
    end
    status.set_selected(root, result.selected)
    local message = ('Switchboard: next messages use %s.'):format(status.model_name(result.selected))
    if type(result.notice) == 'string' then
      message = message .. ' ' .. result.notice
    end
    vim.notify(message, vim.log.levels.INFO)
    if on_done then
      on_done(result)
    end
  end)
end

function M.pick(root)
  local params = { workspaceUri = server.workspace_uri(root) }
  server.request(root, 'switchboard/models', params, function(err, result)
    if err then
      errors.show(err)
      return
    end
    status.set_models(root, result)
    vim.ui.select(result.models, {
      prompt = 'Switchboard model for the next messages',
      kind = 'switchboard_model',
      format_item = function(model)
        return M.format_item(model, result.selected)
      end,
    }, function(choice)
      if choice then
        -- A locked model is sent too: the server's refusal says why and what to do.
        M.select(root, choice.id)
      end
    end)
  end)
end

return M
